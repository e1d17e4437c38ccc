//! elasticache: owned by its service module author.
