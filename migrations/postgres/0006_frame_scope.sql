-- The scope a frame was written under when it carries what an order lookup
-- found ("customer:<id>" or "order:<number>"): a resume replays it whole only
-- to a socket holding that scope again.
ALTER TABLE frames ADD COLUMN scope TEXT;
