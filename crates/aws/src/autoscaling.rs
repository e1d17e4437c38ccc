//! autoscaling: owned by its service module author.
