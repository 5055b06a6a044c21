"""Request queue adapters: the port's implementations and their shared configuration."""
