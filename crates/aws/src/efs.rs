//! efs: owned by its service module author.
