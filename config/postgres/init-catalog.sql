-- The video catalog lives in its own database next to Airflow's metadata database.
CREATE DATABASE vodflow;
