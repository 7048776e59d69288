"""Run the verbs from the command line: the commands, the front door and the allocator tuning."""
