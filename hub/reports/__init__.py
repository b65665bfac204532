"""Reports read from the case store for the people who answer for the scheme (`hub report ...`)."""
