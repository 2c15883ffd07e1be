"""Everything that talks to the open-data portal: one HTTP layer, the catalogue and the fetch.

- :mod:`~geo_crime.net.http`: requests with retries, timeouts and one error per failure;
- :mod:`~geo_crime.net.bounds`: which origins a run may reach;
- :mod:`~geo_crime.net.soda`: the portal's query protocol;
- :mod:`~geo_crime.net.fetch`: the two LAPD sets, resumable keyset paging, atomic files;
- :mod:`~geo_crime.net.spans`: the months each fetched file covers.
"""
