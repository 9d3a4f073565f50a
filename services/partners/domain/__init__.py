"""Partner simulators' rules and state: pure Python, no grpc, protobuf or I/O."""
