"""Pure rules of the notifications service: who is told what (routing), when to try again (back-off),
working days and service levels, the daily digest, and the delivery log's state machine."""
