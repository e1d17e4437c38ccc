//! secrets: owned by its service module author.
