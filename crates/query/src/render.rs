//! Text the CLI prints for people: query results as tables and traces as
//! waterfalls.

pub mod table;
pub mod waterfall;
