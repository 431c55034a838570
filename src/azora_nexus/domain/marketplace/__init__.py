"""Jobs, applications and escrowed contracts."""
