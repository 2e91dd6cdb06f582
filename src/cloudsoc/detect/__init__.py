"""Detection: rules compiled into predicates over stored ECS documents."""
