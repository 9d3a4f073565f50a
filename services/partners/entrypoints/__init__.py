"""gRPC servicers of the partner simulators: thin, typed, proto <-> domain at the edge."""
