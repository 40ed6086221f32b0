"""The notifier (services/notifier, Node.js): its own tests, run by node."""
