"""What a model family and a framework backend implement, and the types the loop and they share."""
