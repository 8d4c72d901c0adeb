"""FiftyOne storage: the database, our datasets, sample inserts, registered runs, disk guard, dataset swap."""
