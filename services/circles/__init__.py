"""The circles service: a circle's life after it is formed (meetings, minutes, concerns, reviews, ending)."""
