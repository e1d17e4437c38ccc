//! Emulator tests of the AWS service modules (aws_edge). Owned by that module's author.
