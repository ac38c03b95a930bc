"""The five building blocks of the broadcast system, one Pulumi component each."""
