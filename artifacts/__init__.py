"""What `pulumi up` ships, built without Pulumi: the function package and the site's file list.

The program hands these to the data-plane resources; the local mode serves the same site files, so
both deliver the same bytes with the same headers.
"""
