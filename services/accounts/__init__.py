"""Sign-in accounts of any kind (coordinators now, volunteers later): throttling of failed sign-ins,
sign-in off the event loop with equal work for unknown accounts, and server-side sessions that sign-out
and disabling end. Each account kind (``coordinator``, ``volunteer``...) brings its own directory."""
