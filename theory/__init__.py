"""Claims of the width-scaling theory as data, their symbolic derivations, and the glue that
checks each claim numerically and returns a verdict (``theory.verify``)."""
