"""The routing studies of the study log (results/study-log.md): two configurations compared,
when a group opens, their statistics."""
