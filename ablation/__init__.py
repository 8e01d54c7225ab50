"""`textinfuse ablate`: does training on TextInfuse data make an autoencoder read text better? One config
declares the arms (the same training, different data); the package makes the data with TextInfuse's
own jobs, trains and evaluates every arm and seed, and writes the table and the grid."""
