"""A referral's progress as the services that follow referrals see it (notifications, the coordinator's
queue and report): its status and the service-level clocks, from referral and matching events, with the
working-day calendar the service levels are counted in. Pure rules; each service keeps its own state."""
