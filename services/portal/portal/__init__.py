"""The portal: the one web front for people, a backend-for-frontend over the four services' APIs."""
