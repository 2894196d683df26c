"""Intake's adapters: AWS behind the small interfaces the domain declares."""
