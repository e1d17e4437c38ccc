//! iam: owned by its service module author.
