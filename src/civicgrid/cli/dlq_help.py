"""``civicgrid dlq replay``'s description, apart from dlq.py: building the ``civicgrid`` parser
must not import the NATS client and the consumer machinery, or every command pays for it."""

REPLAY_HELP = """\
Ask the consumer that dead-lettered a message to handle it again, once the cause is fixed.
The original is not published again (an incident event is still in INCIDENTS; a copy would be
a second event): the service's replay consumer, <durable>-redrive, hands the letter's original
to the same decoder and handler, with the same retries; if it fails again it is dead-lettered
again, as a letter of <durable>-redrive, which can be replayed in turn. Handlers are
idempotent: replaying what was already handled changes nothing. The letter itself stays in the
DLQ until its retention (30 days) ends."""
