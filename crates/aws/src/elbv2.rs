//! elbv2: owned by its service module author.
