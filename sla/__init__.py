"""The pure SLA domain: calendars, events, config models and formulas. No I/O."""
