//! Emulator tests of the AWS service modules (aws_data). Owned by that module's author.
