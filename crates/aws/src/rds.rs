//! rds: owned by its service module author.
