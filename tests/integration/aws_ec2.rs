//! Emulator tests of the AWS service modules (aws_ec2). Owned by that module's author.
