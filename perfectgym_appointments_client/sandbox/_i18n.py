"""Error messages in the caller's language: ``Accept-Language`` negotiation and the message catalog.

The API answers in the language the request asks for (from a fixed list) and keeps ``errorCode``
the same in every language, so clients must branch on the code and never on the text. The
sandbox carries English and German texts; the other languages the API supports get English,
which is still a valid answer for them, but a test that reads ``errorMessage`` shows up in German.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MESSAGES", "SUPPORTED_LANGUAGES", "content_language", "negotiate", "text"]

# The languages the API documents for Accept-Language.
SUPPORTED_LANGUAGES = (
    "cs", "de", "en", "es", "fr", "hu", "it", "nb", "nl", "pl", "ro", "ru", "sl", "sv", "tr",
    "de-CH", "de-LI", "en-CA", "en-GB", "en-US", "fr-LU",
)  # fmt: skip
_BY_LOWER = {tag.lower(): tag for tag in SUPPORTED_LANGUAGES}

# errorCode -> (English, German). ``{name}`` fields are filled from the error's parameters.
MESSAGES: dict[str, tuple[str, str]] = {
    # -- request validation (400)
    "errormessage.validation.max": ("The value is too large", "Der Wert ist zu groß"),
    "errormessage.validation.min": ("The value is too small", "Der Wert ist zu klein"),
    "errormessage.validation.required": ("The value is required", "Der Wert ist erforderlich"),
    "errormessage.validation.number": ("The value is not a valid number", "Der Wert ist keine gültige Zahl"),
    "errormessage.validation.date": (
        "The value is not a date like 2022-06-22",
        "Der Wert ist kein Datum wie 2022-06-22",
    ),
    "errormessage.validation.datetime": (
        "The value is not a date-time like 2022-06-22T08:00:00.000+02:00[Europe/Berlin]",
        "Der Wert ist kein Zeitpunkt wie 2022-06-22T08:00:00.000+02:00[Europe/Berlin]",
    ),
    "errormessage.validation.invalid": ("The value is invalid", "Der Wert ist ungültig"),
    "errormessage.request.body.invalid": (
        "The request body must be a JSON object",
        "Der Inhalt der Anfrage muss ein JSON-Objekt sein",
    ),
    "errormessage.instructor.not.found": ("Instructor {id} does not exist", "Trainer {id} existiert nicht"),
    # -- booking refused by a rule (400): the code is the ValidationStatus
    "PAST_START_DATE_TIME": ("The start lies in the past", "Der Beginn liegt in der Vergangenheit"),
    "END_DATE_TIME_NOT_AFTER_START_DATE_TIME": (
        "The end is not after the start",
        "Das Ende liegt nicht nach dem Beginn",
    ),
    "PERIOD_DOES_NOT_MATCH": (
        "The period does not match the appointment's times",
        "Der Zeitraum passt nicht zu den Zeiten des Termins",
    ),
    "CUSTOMER_IN_OTHER_BOOKING": (
        "The customer has another booking at this time",
        "Der Kunde hat zu dieser Zeit eine andere Buchung",
    ),
    "CUSTOMER_IDLE": (
        "The customer's membership is idle at this time",
        "Die Mitgliedschaft des Kunden ruht zu dieser Zeit",
    ),
    "NO_CONTINGENT": (
        "The customer has no contingent left for this appointment",
        "Der Kunde hat kein Kontingent mehr für diesen Termin",
    ),
    "BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED": (
        "The customer does not fulfil the appointment's restrictions",
        "Der Kunde erfüllt die Einschränkungen des Termins nicht",
    ),
    "BOOKING_LIMIT_REACHED": (
        "The customer has reached the booking limit",
        "Der Kunde hat das Buchungslimit erreicht",
    ),
    "DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME": (
        "Too soon: the start is inside the minimum booking lead time",
        "Zu kurzfristig: der Beginn liegt innerhalb der Mindestvorlaufzeit",
    ),
    "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME": (
        "Too far ahead: the start is beyond the booking horizon",
        "Zu weit im Voraus: der Beginn liegt nach dem Buchungszeitraum",
    ),
    "STUDIO_CLOSED": ("The studio is closed at this time", "Das Studio ist zu dieser Zeit geschlossen"),
    "RESOURCE_NOT_AVAILABLE": (
        "A resource is not available at this time",
        "Eine Ressource ist zu dieser Zeit nicht verfügbar",
    ),
    "NOT_AVAILABLE": (
        "The appointment cannot be booked online",
        "Der Termin kann nicht online gebucht werden",
    ),
    # -- cancelling (400)
    "errormessage.appointment.booking.already.canceled": (
        "Appointment booking {id} is already canceled",
        "Die Terminbuchung {id} ist bereits storniert",
    ),
    "errormessage.appointment.booking.already.started": (
        "Appointment booking {id} has already started",
        "Die Terminbuchung {id} hat bereits begonnen",
    ),
    # -- 401, 403
    "errormessage.unauthorized": ("Unauthorized", "Nicht autorisiert"),
    "errormessage.no.privilege": ("No privilege", "Keine Berechtigung"),
    # -- 404, 405
    "errormessage.bookable.appointment.not.found": (
        "Bookable appointment {id} does not exist",
        "Der buchbare Termin {id} existiert nicht",
    ),
    "errormessage.customer.not.found": ("Customer {id} does not exist", "Der Kunde {id} existiert nicht"),
    "errormessage.appointment.booking.not.found": (
        "Appointment booking {id} does not exist",
        "Die Terminbuchung {id} existiert nicht",
    ),
    "errormessage.route.not.found": (
        "There is no endpoint {method} {path}",
        "Es gibt keinen Endpunkt {method} {path}",
    ),
    "errormessage.method.not.allowed": (
        "The method {method} is not allowed for {path}",
        "Die Methode {method} ist für {path} nicht erlaubt",
    ),
    # -- 409, 429, 500, 503
    "errormessage.concurrent.modification": (
        "The entity was modified by another request",
        "Die Entität wurde durch eine andere Anfrage geändert",
    ),
    "errormessage.rate.limit.exceeded": ("Rate limit exceeded", "Anfragelimit überschritten"),
    "errormessage.internal.error": ("Internal server error", "Interner Serverfehler"),
    "errormessage.service.unavailable": (
        "The service is temporarily unavailable",
        "Der Dienst ist vorübergehend nicht verfügbar",
    ),
}


def negotiate(header: str | None) -> str:
    """The supported language tag ``Accept-Language`` prefers (highest q, then first named); ``en`` if none.

    A tag the API does not list falls back to its primary language when that is listed
    (``de-AT`` -> ``de``); ``*`` means English; ``q=0`` and malformed weights rule a tag out.
    """
    if not header:
        return "en"
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:50]):  # a header is no place for thousands
        tag, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        # NaN and anything outside (0, 1] fail this test too.
        if tag and 0.0 < weight <= 1.0:
            ranked.append((-weight, position, tag))
    for _, _, tag in sorted(ranked):
        lower = tag.lower().replace("_", "-")
        if lower == "*":
            return "en"
        if lower in _BY_LOWER:
            return _BY_LOWER[lower]
        primary = lower.split("-")[0]
        if primary in _BY_LOWER:
            return _BY_LOWER[primary]
    return "en"


def content_language(language: str) -> str:
    """The language the texts for ``language`` are really written in (the Content-Language)."""
    return language if language.split("-")[0] == "de" else "en"


def text(code: str, language: str = "en", **params: Any) -> str:
    """The message for ``code`` in ``language`` (a tag :func:`negotiate` returned)."""
    english, german = MESSAGES[code]
    if language.split("-")[0] != "de":
        return english.format(**params)
    message = german.format(**params)
    # Swiss and Liechtenstein German spell without the sharp s.
    return message.replace("ß", "ss") if language in ("de-CH", "de-LI") else message
