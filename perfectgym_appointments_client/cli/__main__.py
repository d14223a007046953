"""``python -m perfectgym_appointments_client.cli``: the same command as the console script."""

from . import main

main()
