"""Source-NAT gateways between hosts and destinations (``[[gateways]]`` in a scenario).

``base`` is the contract every kind implements; ``kinds`` maps kind names to classes.
"""
