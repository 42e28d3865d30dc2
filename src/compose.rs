//! Message composition for `mailctl send`.
