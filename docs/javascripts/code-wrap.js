// The hanging indent of a wrapped code line (docs/stylesheets/extra.css): the rest of a line too
// long for its block goes on under the line's own indentation plus four columns, so it reads as
// the same statement, not as a new line or a dedent. Each line is a span (pymdownx.highlight's
// line_spans); its leading spaces set --pgac-indent. Without this script the rest goes on four
// columns in, from the block's edge.
(function () {
  function indentLines() {
    const lines = document.querySelectorAll('.md-typeset pre > code > span[id^="__span-"]');
    for (const line of lines) {
      const leading = /^[ ]*/.exec(line.textContent)[0].length;
      line.style.setProperty("--pgac-indent", `${leading + 4}ch`);
    }
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(indentLines); // Material's page-load signal (instant loading included)
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", indentLines);
  } else {
    indentLines();
  }
})();
