"""Server-compatibility tests: buzon end to end on a real Cyrus and a real Courier."""
