"""Event models, one module per owning domain. The catalogue in ``schemas.topics`` lists them all."""
