//! The local SMTP receiver and POP3 server behind `mailctl serve`.
