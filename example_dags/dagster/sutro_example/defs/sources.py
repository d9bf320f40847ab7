"""The source table and the warehouse IO manager, picked up from the defs folder."""

import dagster as dg

from sutro_example.settings import warehouse
from sutro_example.tickets import support_tickets


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[support_tickets], resources={"io_manager": warehouse()})
