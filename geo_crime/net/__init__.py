"""Everything that talks to the open-data portal: one HTTP layer, the catalogue and the fetch.

- :mod:`~geo_crime.net.http`: requests with retries, timeouts and one error per failure;
- :mod:`~geo_crime.net.bounds`: which origins a run may reach;
- :mod:`~geo_crime.net.soda`: the portal's query protocol (headers, SoQL, records, their keys);
- :mod:`~geo_crime.net.catalogue`: the two LAPD sets, their ids, keys, URLs and file names;
- :mod:`~geo_crime.net.paging`: keyset paging of one set and the count check of a pass;
- :mod:`~geo_crime.net.partial`: the saved pages of an interrupted run, and the atomic file;
- :mod:`~geo_crime.net.fetch`: the download of one or several sets, from all of the above;
- :mod:`~geo_crime.net.spans`: the months each fetched file covers.
"""
