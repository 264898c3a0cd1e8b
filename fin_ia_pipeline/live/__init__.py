"""Stage ``live``: hourly shadow (paper) decisions of the registered champion and candidate agents. No orders."""
