//! ssm: owned by its service module author.
