"""Monitor: keeps what models were asked and answered (inference tables) and reads it back."""
