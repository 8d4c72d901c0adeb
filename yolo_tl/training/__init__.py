"""What trains: finetune, freeze, schedules, lr factors, keep-classes, runs.

Imports nothing from deploy/, analysis/ or cli/ (tests/test_layout.py).
"""
