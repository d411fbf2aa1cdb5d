"""What coordinators read: the Excel workbooks, the incident figures, the PNG charts, the
report mails and the ticket listings. May import flows, store, runtime, decide, mail and
config; within it, report_mail > workbooks > incident_reports > sheet_charts > sheets."""
