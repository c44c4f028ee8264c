"""The routing studies of docs/routing.md: two configurations compared, when a group opens,
their statistics."""
