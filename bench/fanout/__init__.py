"""The fan-out benchmark: Socket.IO clients over several processes, paced publishing."""
