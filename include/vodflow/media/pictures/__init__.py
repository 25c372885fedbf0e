"""Pictures: posters, thumbnails and storyboard sprites."""
